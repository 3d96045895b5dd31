"""The ``pose2met`` console script: Ctrl-C while it starts ends with one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# a Ctrl-C arriving while torch is imported (the ~2 s after the command starts), made deterministic
INTERRUPT_TORCH_IMPORT = textwrap.dedent(
    """
    import sys

    class CtrlCDuringTorchImport:
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, CtrlCDuringTorchImport())
    sys.argv = ["pose2met", "fit", "--help"]
    from pose2met.launch import run

    run()
    """
)


def test_ctrl_c_while_loading_torch_ends_quietly() -> None:
    done = subprocess.run([sys.executable, "-c", INTERRUPT_TORCH_IMPORT], capture_output=True, text=True)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "error: interrupted (Ctrl-C)"
    assert done.stdout == ""


def test_console_script_runs_the_command_line() -> None:
    code = "import sys; sys.argv = ['pose2met', 'data']; from pose2met.launch import run; run()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip() == "usage: pose2met data info FILE"
