// Package topologies is the catalogue of example topologies: one YAML file
// per pattern of the ZeroMQ course (pipeline, poller, multithreaded server,
// PAIR signalling, synchronized publisher, envelopes, identities, shared
// queue, load-balancing broker, Paranoid Pirate queue, XSUB/XPUB proxy,
// mixed run modes, at-least-once pipeline, exec log filter), each
// commented for a newcomer. It holds no code: its tests load every file and
// check that each can run to completion by itself.
package topologies
