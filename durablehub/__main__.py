from durablehub.cli.main import main

main()
