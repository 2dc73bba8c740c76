from webhook_dispatcher.main import main

main()
