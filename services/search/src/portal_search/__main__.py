from portal_search.app import main

main()
