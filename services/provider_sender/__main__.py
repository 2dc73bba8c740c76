from provider_sender.main import main

main()
