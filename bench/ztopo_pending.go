package main

// Placeholders until runtime/engine runs topologies.
var (
	ztopoPushPull, ztopoPipeline, ztopoForwardStage, ztopoUpperStage func(Params) (Result, error)
	ztopoReqRepDirect, ztopoReqRepBroker, ztopoFanout, ztopoStartup  func(Params) (Result, error)
)
