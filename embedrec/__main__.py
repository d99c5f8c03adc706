from embedrec.cli import run

run()
