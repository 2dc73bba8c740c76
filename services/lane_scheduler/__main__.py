from lane_scheduler.main import main

main()
