"""`python -m pulumi_django.cli`: the same as the `pulumi-django` command."""

from pulumi_django.cli import main

raise SystemExit(main())
