from portal_publishing.app import main

main()
