from dustcmb.cli import main

main()
