from portal_normalize.app import main

main()
