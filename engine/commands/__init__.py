"""Subcommands of the ``chronoscope`` command, one module each.

Each module defines:
    NAME: str                      the subcommand word
    HELP: str                      one line for ``chronoscope --help``
    DESCRIPTION: str               the long help, ending with examples
    configure(parser) -> None      adds its arguments to an argparse parser
    run(args) -> int               does the work and returns the exit status

``COMMAND_MODULES`` lists them in the order ``--help`` shows them. A command module parses and
presents; the work itself lives in plain functions under engine/.
"""

COMMAND_MODULES = [
    "engine.commands.probe",
    "engine.commands.detect",
    "engine.commands.engine_cmd",
    "engine.commands.segments",
    "engine.commands.models",
    "engine.commands.interpolate",
    "engine.commands.retime",
    "engine.commands.render",
    "engine.commands.repair",
    "engine.commands.fill",
    "engine.commands.gui_cmd",
    "engine.commands.bridge",
    "engine.commands.doctor",
    "engine.commands.train",
    "engine.commands.mine",
]
