from itte.cli import main

main()
