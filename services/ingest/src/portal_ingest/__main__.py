from portal_ingest.app import main

main()
