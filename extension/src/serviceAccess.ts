// Finds the extension's service among OHIF's services (registered in preRegistration under SERVICE_NAME).
import type { ServicesManager } from './ohif-types.js';
import type { ZerovarService } from './service.js';

export function zerovarService(servicesManager: ServicesManager): ZerovarService {
  const service = servicesManager.services.zerovarService;
  if (!service) throw new Error('the zerovar service is not registered (the extension was not pre-registered)');
  return service;
}
