"""``python -m rtrace``: installed as rtrace/__main__.py, a module of the rtrace namespace (no __init__)."""

from rtrace.cli.app import main

main()
