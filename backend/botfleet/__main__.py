from botfleet.cli import main

main()
