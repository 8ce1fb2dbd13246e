from portal_engagement.app import main

main()
