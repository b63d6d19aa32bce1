from metarec.cli.app import main

main()
