from scim_readiness.cli.main import main

raise SystemExit(main())
