module github.com/pxewim/pxewim/bench/gowinio

go 1.26.8

require (
	github.com/Microsoft/go-winio v0.6.2
	github.com/pxewim/pxewim v0.0.0
)

require golang.org/x/sys v0.49.0 // indirect

replace github.com/pxewim/pxewim => ../..
