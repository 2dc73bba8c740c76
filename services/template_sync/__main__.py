from template_sync.main import main

main()
