module lincheck-porcupine-bench

go 1.18

require github.com/anishathalye/porcupine v0.0.0
