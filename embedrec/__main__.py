from embedrec.console import main

main()
