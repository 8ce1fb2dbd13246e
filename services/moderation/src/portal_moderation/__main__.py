from portal_moderation.app import main

main()
