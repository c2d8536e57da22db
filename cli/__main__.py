from rtrace.cli.app import main

main()
