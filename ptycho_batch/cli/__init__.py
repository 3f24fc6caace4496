"""The `ptybatch` command line: argument parsing, the one place errors become exit codes, printed tables.

May import every other package.
"""
