from scim_readiness.cli import main

raise SystemExit(main())
