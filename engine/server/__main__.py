"""``python -m engine.server [options]``: the same as ``chronoscope engine run [options]``.

``chronoscope engine start`` launches the background engine this way, so that it does not depend
on every other subcommand module importing cleanly.
"""

import sys

from engine.commands.engine_cmd import main_run

sys.exit(main_run(sys.argv[1:]))
