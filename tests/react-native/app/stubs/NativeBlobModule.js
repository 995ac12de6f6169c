// React Native's URL.js asks the Blob TurboModule for its blob: scheme; there is none here
// (as in an app without the Blob module): URL.createObjectURL is then unavailable, nothing else.
export default null;
