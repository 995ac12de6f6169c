// Metro's transform for the Hermes bundle: React Native's own Babel preset, with the transform
// profile `@react-native/metro-babel-transformer` passes for Metro's 'default' profile (the one
// for Hermes before V1, which the VM on npm is: classes and private fields transformed).
module.exports = {
  presets: [['module:@react-native/babel-preset', { unstable_transformProfile: 'default' }]],
};
