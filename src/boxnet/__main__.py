from boxnet.cli.main import main

raise SystemExit(main())
