"""`python -m echoweave ...` is the same as the `echoweave` console script."""
from echoweave.cli import main

if __name__ == "__main__":
    main()
