"""The one choice of PyYAML's safe parser and emitter: libyaml's (C) when PyYAML was built with it.

Why: a 10,000-value matrix parses in 0.1 s instead of 2 s and is written to a run's campaign.yaml in a
blink (issue 13); the pure-Python classes read and write the same YAML. A module of its own because
readers of a run's plan.json never import yaml: whoever parses or writes a campaign file imports this.
"""

from __future__ import annotations

import yaml

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
