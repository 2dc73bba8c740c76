from ingress_api.main import main

main()
