"""Entry point of the writer process (a module of its own, so the classes it pickles keep their real names)."""

import sys

from tinyfleet.ingest.writer_process import main

if __name__ == "__main__":
    main(sys.argv[1:])
