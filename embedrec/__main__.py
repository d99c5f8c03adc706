from embedrec.cli import main

main()
