from mailwarden.cli import main

raise SystemExit(main())
