"""Stand-in for the get-pip.py script that ansible-test downloads.

ansible-test bootstraps pip into the virtual environments of `sanity --venv`
with a script it downloads from a host this project cannot reach. This file is
placed in ~/.ansible/test/cache/get_pip_<version>.py by `make sanity`: it
installs pip with the interpreter's own ensurepip, then lets that pip install
the packages ansible-test asked for (the exact pip version among them).
"""

import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip sets PIP_CONFIG_FILE=/dev/null in this process: drop it, so that the
# machine's pip configuration (certificates, mirrors) applies to the real install
os.environ.pop("PIP_CONFIG_FILE", None)
wanted = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *wanted]))
