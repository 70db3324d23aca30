/** Realistic names and presets, taken from the shapes seen in AI4OS snapshots. */

import type { JobKind } from './model.js';

export const FIRST_NAMES = [
  'Eva', 'Ivan', 'Laura', 'Martin', 'Katarzyna', 'Lucia', 'Pedro', 'Anna', 'Jonas', 'Sofia',
  'Marco', 'Elif', 'Tomas', 'Ines', 'Mehmet', 'Julia', 'Pablo', 'Marta', 'Lukas', 'Ana',
  'Giulia', 'Nikolai', 'Zeynep', 'Joao', 'Claire', 'Andrei', 'Sara', 'David', 'Ewa', 'Hugo',
];

export const LAST_NAMES = [
  'Moreno', 'Dubois', 'Lindqvist', 'Bianchi', 'Horvat', 'Garcia', 'Nowak', 'Silva', 'Schmidt',
  'Yilmaz', 'Rossi', 'Kowalski', 'Fernandes', 'Novak', 'Martin', 'Demir', 'Lopez', 'Muller',
  'Costa', 'Popescu', 'Jensen', 'Kaya', 'Ferreira', 'Wagner', 'Romero', 'Petrov', 'Santos',
];

export const EMAIL_DOMAINS = [
  'kit.edu', 'tubitak.gov.tr', 'upv.es', 'outlook.com', 'gmail.com', 'ifca.unican.es',
  'lip.pt', 'savba.sk', 'psnc.pl', 'uni-heidelberg.de',
];

export const TITLES = [
  'GPU test', 'baseline', 'demo', 'training', 'my-deployment', 'Clasificación de imágenes', 'dev',
  'yolo v8 training', 'test', 'tutorial', 'workshop', 'inference', '', 'experiment 3', 'jupyter',
  'hyperparameter search', 'Test deployment', 'deployment for paper', 'fine-tune', 'Überprüfung',
  'Training run', 'Prueba',
];

export const DESCRIPTIONS = [
  'Reproducing results from the paper', '', 'Deployment for the hackathon',
  'Jupyter session for development', 'Análisis preliminar', 'Comparing architectures',
  'Testing the module', 'Quick test', 'Training the model on new data',
  'Fine-tuning with our own dataset (v2)',
];

export const MODULE_IMAGES = [
  'ai4oshub/ai4os-audio-classification-tf:latest', 'ai4oshub/ai4os-demo-app:latest',
  'ai4oshub/ai4os-satellite-segmentation:latest', 'ai4oshub/ai4os-thermal-bridges:latest',
  'ai4oshub/ai4os-mlflow-demo:latest', 'ai4oshub/ai4os-speech-to-text-tf:latest',
  'ai4oshub/ai4os-dev-env:latest', 'ai4oshub/ai4os-cnn-forecast:latest',
  'ai4oshub/ai4os-unet-segmentation:latest', 'ai4oshub/ai4os-fasterrcnn-torch:latest',
  'ai4oshub/ai4os-lightgbm-tabular:latest', 'ai4oshub/ai4os-zooprocess-multiple-classifier:latest',
  'ai4oshub/ai4os-llm-finetune:latest', 'ai4oshub/ai4os-phyto-plankton-classification:latest',
  'ai4oshub/ai4os-image-classification-tf:latest', 'ai4oshub/ai4os-yolov8-torch:latest',
  'ai4oshub/ai4os-obsea-fish-detection:latest', 'ai4oshub/ai4os-litter-assessment:latest',
  'ai4oshub/ai4os-bee-detection:latest',
];

export const SITES = ['incd', 'ifca', 'iisas', 'tubitak', 'psnc'];

/** Sites whose CPU nodes are named "<site>-wn-NN" rather than "<site>-cpu-wn-NN". */
export const SHORT_NODE_NAMES = new Set(['incd']);

export const GPU_MODELS = ['NVIDIA A100-SXM4-80GB', 'Tesla V100-PCIE-32GB', 'NVIDIA T4', 'NVIDIA L40S'];

export const CPU_KINDS: readonly (readonly [JobKind, number])[] = [
  ['module', 0.78],
  ['tool-devenv', 0.12],
  ['batch', 0.06],
  ['tool-fl', 0.02],
  ['tool-ai4life', 0.02],
];

export const GPU_KINDS: readonly (readonly [JobKind, number])[] = [
  ['module', 0.8],
  ['tool-llm', 0.12],
  ['tool-devenv', 0.05],
  ['batch', 0.03],
];

export const CORES: readonly (readonly [number, number])[] = [
  [1, 0.28], [2, 0.3], [4, 0.22], [8, 0.13], [16, 0.07],
];

export const MEMORY_MIB: readonly (readonly [number, number])[] = [
  [2000, 0.12], [4000, 0.26], [8000, 0.24], [16000, 0.2], [32000, 0.1], [64000, 0.06], [65536, 0.02],
];

export const DISK_MIB: readonly (readonly [number, number])[] = [
  [4096, 0.05], [10000, 0.25], [20000, 0.3], [30000, 0.18], [50000, 0.17], [51200, 0.05],
];

export const MODULE_COMMANDS: readonly (readonly [string, number])[] = [
  ['deep-start --deepaas', 0.53],
  ['deep-start --jupyter', 0.29],
  ['deep-start --vscode', 0.18],
];

export const BATCH_COMMAND = '/bin/bash /srv/user-batch-commands.sh';

/** The prestart sidecar every AI4OS job carries (storage mount). */
export const SIDECAR = { name: 'storage_mount', mhz: 50, memoryMib: 2000 } as const;

export const NETWORK_ERROR =
  'There seems to be network issues in the cluster. Please wait until the network is restored and you should be able to fully recover your deployment.';

/** Public domain of a namespace's deployments. */
export function domainOf(namespace: string): string {
  return namespace === 'imagine' ? 'imagine-ai.eu' : 'ai4eosc.eu';
}
