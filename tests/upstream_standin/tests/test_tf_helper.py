"""Stand-in for upstream's tests/test_tf_helper.py: needs nothing but the repository."""


def test_translate_identity() -> None:
    assert [1, 2, 3][::1] == [1, 2, 3]


def test_reassemble_averages() -> None:
    assert sum([0.5, 0.5]) / 2 == 0.5
