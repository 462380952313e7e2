"""`python -m fleetscaler.deploy.template [DIRECTORY]`: rewrite the templates (default: the repository's cfn/)."""

import sys

from fleetscaler.deploy.template import main

if __name__ == "__main__":
    sys.exit(main())
