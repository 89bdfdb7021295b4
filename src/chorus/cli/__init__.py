"""The ``chorus`` command line: one module per command group, discovered automatically.

Each module here (except ``main`` and names starting with ``_``) defines
``register(app: typer.Typer) -> None``. Commands stay thin: parse, call the library,
print. Heavy imports go inside the command functions so ``chorus --help`` stays fast.
"""
