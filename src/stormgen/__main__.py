from stormgen.cli import main

main()
