/** The parts of Kubernetes API objects that hourmeter reads (see the API reference). */

export type ResourceList = Record<string, string>;

export interface ResourceRequirements {
  requests?: ResourceList | null;
  limits?: ResourceList | null;
}

export interface Container {
  name: string;
  resources?: ResourceRequirements | null;
  /** On an init container, `Always` makes it a sidecar that runs alongside the main containers. */
  restartPolicy?: string | null;
}

export interface OwnerReference {
  apiVersion?: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  creationTimestamp?: string | null;
  deletionTimestamp?: string | null;
  deletionGracePeriodSeconds?: number | null;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  ownerReferences?: OwnerReference[] | null;
  resourceVersion?: string;
  managedFields?: unknown;
}

export interface PodCondition {
  type: string;
  status: string;
  lastTransitionTime?: string | null;
  reason?: string;
  message?: string;
}

export interface ContainerState {
  running?: { startedAt?: string | null } | null;
  terminated?: { startedAt?: string | null; finishedAt?: string | null; exitCode?: number; reason?: string } | null;
  waiting?: { reason?: string } | null;
}

export interface ContainerStatus {
  name: string;
  state?: ContainerState | null;
  lastState?: ContainerState | null;
  restartCount?: number;
}

export interface Pod {
  metadata: ObjectMeta;
  spec?: {
    containers?: Container[] | null;
    initContainers?: Container[] | null;
    overhead?: ResourceList | null;
    /** Pod-level resources (PodLevelResources): when set, they replace the containers' cpu and memory. */
    resources?: ResourceRequirements | null;
    nodeName?: string | null;
  } | null;
  status?: {
    phase?: string;
    conditions?: PodCondition[] | null;
    startTime?: string | null;
    containerStatuses?: ContainerStatus[] | null;
    initContainerStatuses?: ContainerStatus[] | null;
  } | null;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface PodList {
  kind?: string;
  apiVersion?: string;
  metadata?: ListMeta;
  items: Pod[];
}

export interface NamespaceList {
  metadata?: ListMeta;
  items: { metadata: { name: string } }[];
}

/** The body of an API error reply (`kind: Status`). */
export interface Status {
  kind?: 'Status';
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}
