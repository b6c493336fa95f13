// Package enginetest runs plugin and exec handlers inside real topologies
// (runtime/engine) with pyzmq peers. It is apart from pluginhost's own
// tests so that those never depend on the engine.
package enginetest
