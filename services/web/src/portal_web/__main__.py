from portal_web.app import main

main()
