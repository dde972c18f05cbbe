"""Implementations of the evaluation and application subcommands of ``anila`` (compose, eval, ood).

Each function takes explicit arguments (no argparse namespace), writes its files and returns what it
measured, so the CLI stays a thin parser and the tests call the functions directly.
"""
