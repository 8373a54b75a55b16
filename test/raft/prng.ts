// The seeded PRNG lives in src/util (chaos runs use it too).
export { Prng } from '../../src/util/prng.js';
