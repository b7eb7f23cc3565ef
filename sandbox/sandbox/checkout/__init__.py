"""The sandbox's fork of Oscar's checkout app (made with ``manage.py oscar_fork_app``)."""
