from boxnet.demo.script import main

raise SystemExit(main())
