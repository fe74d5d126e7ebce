// Stands in for optional modules a bundle must not load (react-devtools-core for ink).
export default undefined;
