from stormgen._entry import main

main()
