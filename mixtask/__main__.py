from mixtask.cli import main

main()
